// The part of s3rver (an S3-compatible server for tests) that test/node/bundles.test.ts uses; it ships no types.
declare module "s3rver" {
  export default class S3rver {
    constructor(options: { port: number; address: string; directory: string; silent?: boolean; configureBuckets?: { name: string }[] });
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
  }
}
