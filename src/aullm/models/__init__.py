"""Models: AU-LLM, the AULLM++ reconstruction and the baselines. `registry` lists them by name; nothing is
imported here, so that reading a config (which consults the registry) does not import torch."""
