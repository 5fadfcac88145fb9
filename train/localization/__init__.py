"""The learned SRP-PHAT localization run (``config=localization_srp``): ``pipeline``."""
