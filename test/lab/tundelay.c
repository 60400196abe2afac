// tundelay: a userspace delay line for test topologies on kernels without netem. Packets the kernel routes into
// the TUN device IFNAME are held for DELAY_MS, then written back into the same device, so the kernel sees them
// arrive from it and forwards them on. The IPv4 TTL / IPv6 hop limit is raised by one so the detour costs no
// traceroute hop. Built and started by the tests (test/node/lab.ts); stops on SIGTERM.
//   usage: tundelay IFNAME DELAY_MS
#include <fcntl.h>
#include <linux/if.h>
#include <arpa/inet.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 8192
#define MTU 2048

struct slot { uint64_t due; ssize_t len; uint8_t data[MTU]; };
static struct slot queue[SLOTS];

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void bump_ttl(uint8_t *p, ssize_t len) {
  if (len >= 20 && p[0] >> 4 == 4) {
    if (p[8] < 255) p[8]++;
    p[10] = p[11] = 0;
    uint32_t sum = 0;
    int ihl = (p[0] & 15) * 4;
    for (int i = 0; i + 1 < ihl; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    p[10] = (uint8_t)(~sum >> 8);
    p[11] = (uint8_t)(~sum & 0xff);
  } else if (len >= 40 && p[0] >> 4 == 6) {
    if (p[7] < 255) p[7]++;
  }
}

static uint16_t csum(const uint8_t *p, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += (uint32_t)(p[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

/* An ICMP time exceeded from `from` quoting 128 bytes of `pkt` (zero-padded) plus one MPLS label stack object. */
static ssize_t mpls_time_exceeded(const uint8_t *pkt, ssize_t len, uint32_t from, uint32_t label, uint8_t *out) {
  const size_t quote = 128, ext = 4 + 8, icmp = 8 + quote + ext, total = 20 + icmp;
  memset(out, 0, total);
  out[0] = 0x45; out[2] = (uint8_t)(total >> 8); out[3] = (uint8_t)total; out[8] = 64; out[9] = 1;  /* ICMP */
  memcpy(&out[12], &from, 4);
  memcpy(&out[16], &pkt[12], 4);  /* back to the probe */
  uint16_t c = csum(out, 20); out[10] = (uint8_t)(c >> 8); out[11] = (uint8_t)c;
  uint8_t *m = out + 20;
  m[0] = 11; m[5] = (uint8_t)(quote / 4);  /* RFC 4884: length of the original datagram, in 32-bit words */
  memcpy(m + 8, pkt, (size_t)len < quote ? (size_t)len : quote);
  uint8_t *e = m + 8 + quote;
  e[0] = 2 << 4;                                  /* extension version 2 */
  e[4] = 0; e[5] = 8; e[6] = 1; e[7] = 1;         /* object: length 8, class 1 (MPLS label stack), c-type 1 */
  uint32_t entry = label << 12 | 0 << 9 | 1 << 8 | 1;  /* exp 0, bottom of stack, TTL 1 */
  e[8] = (uint8_t)(entry >> 24); e[9] = (uint8_t)(entry >> 16); e[10] = (uint8_t)(entry >> 8); e[11] = (uint8_t)entry;
  c = csum(e, ext); e[2] = (uint8_t)(c >> 8); e[3] = (uint8_t)c;
  c = csum(m, icmp); m[2] = (uint8_t)(c >> 8); m[3] = (uint8_t)c;
  return (ssize_t)total;
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 6) { fprintf(stderr, "usage: tundelay IFNAME DELAY_MS [mpls LABEL FROM]\n"); return 2; }
  uint32_t mpls_from = 0, mpls_label = 0;
  if (argc == 6) {
    mpls_label = (uint32_t)atoi(argv[4]);
    if (strcmp(argv[3], "mpls") != 0 || inet_pton(AF_INET, argv[5], &mpls_from) != 1) { fprintf(stderr, "bad mpls arguments\n"); return 2; }
  }
  uint64_t delay = (uint64_t)(atof(argv[2]) * 1e6);
  int fd = open("/dev/net/tun", O_RDWR);
  if (fd < 0) { perror("open /dev/net/tun"); return 1; }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) { perror("TUNSETIFF"); return 1; }
  printf("tundelay %s: %s ms\n", argv[1], argv[2]);
  fflush(stdout);
  size_t head = 0, tail = 0;  // a FIFO: with one fixed delay, packets leave in arrival order
  for (;;) {
    uint64_t t = now_ns();
    while (head != tail && queue[head % SLOTS].due <= t) {
      struct slot *s = &queue[head % SLOTS];
      if (write(fd, s->data, (size_t)s->len) < 0) perror("write");
      head++;
    }
    int timeout = -1;
    if (head != tail) timeout = (int)((queue[head % SLOTS].due - t) / 1000000u);
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, timeout);
    if (r > 0 && (p.revents & POLLIN)) {
      struct slot *s = &queue[tail % SLOTS];
      s->len = read(fd, s->data, MTU);
      if (s->len <= 0) continue;
      if (tail - head >= SLOTS) continue;  // full: drop, as a real queue would
      if (mpls_from && s->len >= 20 && s->data[0] >> 4 == 4 && s->data[8] == 1) {
        uint8_t reply[MTU];
        ssize_t n = mpls_time_exceeded(s->data, s->len, mpls_from, mpls_label, reply);
        memcpy(s->data, reply, (size_t)n);
        s->len = n;
      } else {
        bump_ttl(s->data, s->len);
      }
      s->due = now_ns() + delay;
      tail++;
    }
  }
}
