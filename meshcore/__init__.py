"""meshcore: the Trio service-mesh data plane of meshchaos (a library; never imports harness)."""
