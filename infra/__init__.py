"""The CDK app that deploys the platform to AWS (synthesised offline by `make synth`)."""
