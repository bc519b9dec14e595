"""One module per `assetsync` subcommand, each exposing `register(subparsers)`."""
