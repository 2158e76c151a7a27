"""`python -m local`: the local gateway (`make dev`)."""

from local.gateway import main

main()
