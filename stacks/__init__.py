"""CDK code: the model catalog, environment config, reusable constructs and thin stacks."""
