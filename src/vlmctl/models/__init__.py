"""Model specs: the built-in catalog and local model folders."""
from vlmctl.models.catalog import CATALOG, CatalogEntry, catalog_entry
from vlmctl.models.loader import load_model_spec, spec_from_folder
from vlmctl.models.spec import ModelSpec, QuantSpec, VisionSpec, spec_from_config

__all__ = ["CATALOG", "CatalogEntry", "ModelSpec", "QuantSpec", "VisionSpec", "catalog_entry",
           "load_model_spec", "spec_from_config", "spec_from_folder"]
