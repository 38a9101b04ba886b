"""A trained model as one self-contained folder (`llara export`) with its model card. Reading
one back is the model layer's: llara.model.manifest (its parts' digests) and llara.model.hub
(a local folder or a hub id)."""

from llara.export.card import CITATION, model_card
from llara.export.write import EXPORT_FILES, ExportReport, export_model

__all__ = [
    "CITATION",
    "model_card",
    "EXPORT_FILES",
    "ExportReport",
    "export_model",
]
