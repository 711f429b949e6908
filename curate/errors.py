"""One exception type for bad input: its message is the single line a user sees."""


class CurateError(Exception):
    """Bad input or environment. ``str(err)`` names the file and the problem in one line.

    ``kind``: for problems with a frame's files, the finding kind (``curate.findings.KINDS``)
    under which ``curate check`` lists it.
    """

    def __init__(self, path, problem: str, kind: str | None = None):
        self.path = str(path) if path is not None else None
        self.problem = problem
        self.kind = kind
        super().__init__(f"{self.path}: {self.problem}" if self.path else problem)

    def __reduce__(self):
        # Picklable with its arguments, so it crosses process and Dask worker boundaries.
        return (type(self), (self.path, self.problem, self.kind))


class OutputError(CurateError):
    """An output that cannot be written (full disk, read-only file system, a folder in the way, …).

    Not a fault of the frame being converted: ``--on-error skip`` must not skip past it."""
