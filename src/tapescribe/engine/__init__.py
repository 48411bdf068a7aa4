"""Audio decoding, model loading and transcription. Imports nothing from the rest of tapescribe but errors.

numpy imports some of its submodules on first use (`np.ma`, `np.fft`, through the package's module
`__getattr__`). Decoding reaches them from many threads at once (word timestamps call `np.median`,
which looks at `np.ma`; the feature extractor uses `np.fft`), and two threads racing that first
import once recursed in numpy's `__getattr__` until RecursionError, which ended a live stream. They
are imported here, once, when the engine is loaded at start, before any decoding thread runs.
"""

import numpy.fft  # (see above)
import numpy.ma  # noqa: F401  (see above)
