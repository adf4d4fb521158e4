"""ccxt adapters: the exchange factory, symbol mapping, retries and the order gateway."""
