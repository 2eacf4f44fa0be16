# A small platform: one base image, two language runtimes on it and three services on
# those, linked with target: contexts so `kiln bake` builds them as one graph. Everything
# builds offline: the base is assembled from the host's busybox-static binary.

variable "TAG" {
  default = "dev"
}

variable "REGISTRY" {
  default = "kiln.local/platform"
}

# Pinning SOURCE_DATE_EPOCH makes every image reproducible byte for byte.
variable "SOURCE_DATE_EPOCH" {
  default = "1700000000"
}

group "default" {
  targets = ["services"]
}

group "services" {
  targets = ["api", "worker", "web"]
}

group "runtimes" {
  targets = ["runtime-sh", "runtime-awk"]
}

target "_common" {
  args = {
    SOURCE_DATE_EPOCH = SOURCE_DATE_EPOCH
  }
  labels = {
    "org.opencontainers.image.vendor" = "kiln example"
  }
}

target "base" {
  inherits = ["_common"]
  context  = "base"
  contexts = {
    busybox = "/bin"
  }
  tags = ["${REGISTRY}/base:${TAG}"]
}

target "runtime-sh" {
  inherits = ["_common"]
  context  = "runtimes/sh"
  contexts = {
    base = "target:base"
  }
  tags = ["${REGISTRY}/runtime-sh:${TAG}"]
}

target "runtime-awk" {
  inherits = ["_common"]
  context  = "runtimes/awk"
  contexts = {
    base = "target:base"
  }
  tags = ["${REGISTRY}/runtime-awk:${TAG}"]
}

target "api" {
  inherits = ["_common"]
  context  = "services/api"
  contexts = {
    runtime = "target:runtime-sh"
  }
  tags = ["${REGISTRY}/api:${TAG}"]
}

target "worker" {
  inherits = ["_common"]
  context  = "services/worker"
  contexts = {
    runtime = "target:runtime-awk"
  }
  tags = ["${REGISTRY}/worker:${TAG}"]
}

target "web" {
  inherits = ["_common"]
  context  = "services/web"
  contexts = {
    runtime = "target:runtime-sh"
  }
  args = {
    SOURCE_DATE_EPOCH = SOURCE_DATE_EPOCH
    GREETING          = "hello from kiln"
  }
  tags = ["${REGISTRY}/web:${TAG}"]
}
