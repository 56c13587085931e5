"""watches.yaml -> frozen, validated :class:`Settings`: reading, schema, checks, values.

:mod:`.yaml_source` reads the text with every key's line, :mod:`.schema` validates each
value, :mod:`.checks` runs whole-file checks, :mod:`.build` turns the validated model into
the frozen results of :mod:`.values`, and :mod:`.loader` ties them together. Callers
import from here.
"""

from watcher.config.loader import *  # noqa: F403
from watcher.config.loader import __all__ as __all__
