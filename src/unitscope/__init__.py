"""unitscope: find out how objects are represented inside convolutional networks.

A reusable reproduction of "Object Detectors Emerge in Deep Scene CNNs"
(Zhou, Khosla, Lapedriza, Oliva, Torralba, ICLR 2015): which images each
layer prefers, minimal image representations, receptive fields, what each
unit means, which objects units detect and how well they localise them.
"""

__version__ = "0.1.0"
