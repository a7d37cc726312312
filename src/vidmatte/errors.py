"""The exception and warning types that the command line reports as one line, without a traceback."""


class VidmatteError(Exception):
    """Bad input or environment: a missing file, a corrupt image, masks that do not fit the frames.

    The message names the offending file first, e.g. ``"pred/clip/pha/0003.png: size 64x48 differs
    from the ground truth's 512x288"``, so that a user can act on it without reading code.
    """


class VidmatteWarning(UserWarning):
    """Something the user should know that does not stop the run: an input's alpha channel is ignored.

    The message names the file first, as :class:`VidmatteError`'s; the command line prints it as one
    ``vidmatte: warning: ...`` line.
    """
