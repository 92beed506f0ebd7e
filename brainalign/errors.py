"""One exception type for problems the user can fix (bad config, missing file, bad data).

Scripts and the CLI catch it and print its message as a single line, so a run stops with a message that
names the file or field and what was expected, never a bare traceback.
"""


class BrainalignError(Exception):
    """A user-facing error; the message is one line naming the file/field and what was expected."""
