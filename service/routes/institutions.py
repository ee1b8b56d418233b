"""Institutions: listed by everyone who works with catalogues, managed by admins."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import MayAdminister, MayListInstitutions, RuntimeDep
from service.schemas import Deleted, InstitutionCreate, InstitutionPublic

router = APIRouter(prefix="/api/v1/institutions", tags=["institutions"])


@router.get(
    "",
    response_model=list[InstitutionPublic],
    summary="Institutions (roles: registrar, investigator, analyst, admin)",
)
def list_institutions(user: MayListInstitutions, runtime: RuntimeDep) -> list[InstitutionPublic]:
    return [InstitutionPublic(**i.__dict__) for i in runtime.queries.institutions()]


@router.post("", response_model=InstitutionPublic, status_code=201, summary="New (role: admin)")
def create_institution(
    body: InstitutionCreate, user: MayAdminister, runtime: RuntimeDep
) -> InstitutionPublic:
    return InstitutionPublic(**runtime.queries.create_institution(body.name).__dict__)


@router.delete("/{name}", response_model=Deleted, summary="Delete an unused one (role: admin)")
def delete_institution(name: str, user: MayAdminister, runtime: RuntimeDep) -> Deleted:
    runtime.queries.delete_institution(name)
    return Deleted(deleted=f"institution {name}")
