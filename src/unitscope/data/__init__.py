"""Image pools and annotations: plain folders, Broden directories, index-mask datasets.

The dataset layouts read from disk (Broden, CamVid, ADE20K, VOC, Cityscapes,
any images + masks + class file) are in :mod:`unitscope.data.layouts`.

Every pool is a ``torch.utils.data.Dataset`` of ``(image, meta)``; annotated
pools add concepts and per-pixel masks.  See :mod:`unitscope.data.pools` for
the contract and :mod:`unitscope.data.broden` for the Broden format.
"""

from .annotated import (
    CAMVID_CATEGORIES,
    CAMVID_CLASSES,
    AnnotatedPool,
    IndexMaskPool,
    camvid_pool,
    decode_broden_mask,
    read_index_mask,
)
from .broden import BrodenPool, BrodenRecord, read_label_csv, write_broden
from .classlist import ClassList, MaskClass, read_class_file
from unitscope.concepts import BRODEN_CATEGORIES, Annotation, Concept, ConceptTable
from .convert import ConvertResult, convert_to_broden
from .errors import CorruptFileError
from .pools import BatchMetas, PlainPool, Pool, SkippedItem, collate, read_image
from .transforms import ImageTransform, denormalize, image_transform, to_tensor

__all__ = [
    "Pool",
    "PlainPool",
    "AnnotatedPool",
    "BrodenPool",
    "IndexMaskPool",
    "camvid_pool",
    "CAMVID_CLASSES",
    "CAMVID_CATEGORIES",
    "BrodenRecord",
    "write_broden",
    "convert_to_broden",
    "ConvertResult",
    "read_label_csv",
    "decode_broden_mask",
    "read_index_mask",
    "ClassList",
    "MaskClass",
    "read_class_file",
    "BRODEN_CATEGORIES",
    "Annotation",
    "Concept",
    "ConceptTable",
    "CorruptFileError",
    "SkippedItem",
    "BatchMetas",
    "collate",
    "read_image",
    "ImageTransform",
    "image_transform",
    "denormalize",
    "to_tensor",
]
