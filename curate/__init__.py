"""synmix curation tool: Synscapes → Cityscapes conventions, instance statistics, pruned mixes."""

__version__ = "0.1.0"
