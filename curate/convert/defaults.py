"""Defaults of ``curate convert`` that the CLI needs before anything heavy is imported."""

#: Frames per shard: the unit of parallel work and of --resume (25,000 / 64 ≈ 390 tasks).
DEFAULT_SHARD_SIZE = 64
