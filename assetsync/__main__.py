import gc

# The collector is off while assetsync's modules load (`assetsync.cli.run` says why and turns it
# back on before the command runs).
gc.disable()

from assetsync.cli import run  # noqa: E402

run()
