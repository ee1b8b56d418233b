"""The catalogue database: institutions, objects, photos, vectors, listing checks."""

from storage.catalogue.orm import Base, CatalogueObject, Embedding, Institution, ListingCheck, Photo
from storage.catalogue.repository import Catalogue, NewPhoto, PhotoRef, create_catalogue

__all__ = [
    "Base",
    "Catalogue",
    "CatalogueObject",
    "Embedding",
    "Institution",
    "ListingCheck",
    "NewPhoto",
    "Photo",
    "PhotoRef",
    "create_catalogue",
]
