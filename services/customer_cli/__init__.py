"""The customer's command line: `gridlease offers|lease|account|signup`, over the HTTP API only."""
