"""The embedded stack: moto's server as the AWS endpoint, provisioned from template.yaml."""
