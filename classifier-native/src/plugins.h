// The plug-ins compiled into the addon, by name. New plug-ins register here (see README.md for an example).
#pragma once
#include <memory>

#include "plugin.h"

namespace classifier {

std::unique_ptr<Plugin> MakePortPlugin();
std::unique_ptr<Plugin> MakeNdpiPlugin();
std::unique_ptr<Plugin> MakeSignaturePlugin();
std::unique_ptr<Plugin> MakeStatisticalPlugin();

}  // namespace classifier
