"""Model providers: the registry (Vault, environment, config file) and one module per wire protocol."""
