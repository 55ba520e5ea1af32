"""Model specs: the built-in catalog, local model folders, and one module per model family."""
from vlmctl.models.catalog import CATALOG, CatalogEntry, catalog_entry
from vlmctl.models.families import FAMILIES, Family, family_for
from vlmctl.models.loader import load_model_spec, spec_from_folder
from vlmctl.models.spec import ModelSpec, QuantSpec, VisionSpec, spec_from_config

__all__ = ["CATALOG", "FAMILIES", "CatalogEntry", "Family", "ModelSpec", "QuantSpec", "VisionSpec", "catalog_entry",
           "family_for", "load_model_spec", "spec_from_config", "spec_from_folder"]
