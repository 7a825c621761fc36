"""harness: experiments, topology, load, chaos, measurement, SLOs and reports of meshchaos."""
