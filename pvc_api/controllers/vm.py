"""``/api/v1/vm``: define, list, show, change, move and remove VMs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pecan
from pecan import rest

from pvc_api import present, waiting
from pvc_api.context import by, current
from pvc_api.operation import Reply, encode_json, operation
from pvc_api.schemas import vm as s
from pvc_api.schemas.common import ERROR, WAIT_QUERY
from pvc_core.errors import Conflict, InvalidInput, NotFound
from pvc_core.ops.vms import (
    define_vm,
    migrate_vm,
    modify_vm,
    remove_vm,
    set_vm_meta,
    set_vm_state,
    unmigrate_vm,
)
from pvc_core.store.records import VmRecord

TAG = "vm"
_ERRORS = {400: ERROR, 404: ERROR, 409: ERROR, 503: ERROR}
_READ_ERRORS = {404: ERROR, 503: ERROR}


def _show(record: VmRecord) -> dict[str, Any]:
    ctx = current()
    return present.vm(record, present.running_uuids(ctx.cache.nodes()))


def _waited(record: VmRecord, action: str, query: dict[str, Any]) -> Reply:
    """The answer to a state change or move: 200 once done, else 202."""
    ctx = current()
    done = waiting.wait(ctx, lambda: waiting.vm_done(ctx, record, action), query)
    if done:
        try:
            record = ctx.cache.vm(record.uuid)
        except NotFound:  # removed meanwhile: show what was written
            pass
    return Reply({**_show(record), "done": done}, 200 if done else 202)


def _state(vm: str, state: str, query: dict[str, Any], body: dict[str, Any]) -> Reply:
    ctx = current()
    ctx.cache.check_fresh()
    force = bool(body.get("force", query.get("force", False)))
    record = set_vm_state(ctx.store, vm, state, by=by(), force=force,
                          reason=f"{state}{' (forced)' if force else ''} by {by()}")
    return _waited(record, state, query)


_WAITED = {200: s.VM_WAITED, 202: s.VM_WAITED, **_ERRORS}


@contextmanager
def _meta_fields_at_top() -> Iterator[None]:
    """The core names metadata fields ``meta.<field>``; in these request
    bodies they are top-level fields."""
    try:
        yield
    except InvalidInput as exc:
        if exc.field and exc.field.startswith("meta."):
            field = exc.field.removeprefix("meta.")
            message = exc.message.removeprefix(f"{exc.field}: ")
            raise InvalidInput(message, field) from None
        raise


class VmXmlController(rest.RestController):
    """``/vm/{vm}/xml``: the domain XML."""

    @operation("GET", "/vm/{vm}/xml", summary="The VM's domain XML", tag=TAG,
               responses={200: s.XML_RESPONSE, **_READ_ERRORS})
    def get_all(self, vm: str) -> dict[str, Any]:
        ctx = current()
        return {"xml": ctx.store.vms.get_xml(vm).value}

    @operation("PUT", "/vm/{vm}/xml", summary="Replace the domain XML (same UUID and name; "
               "applies at the next start)", tag=TAG, body=s.XML_BODY,
               responses={200: s.VM, **_ERRORS})
    def put(self, vm: str, body: dict[str, Any]) -> dict[str, Any]:
        return _show(modify_vm(current().store, vm, body["xml"]))


class VmController(rest.RestController):
    """``/vm``: one resource per VM, addressed by name or UUID."""

    xml = VmXmlController()
    _custom_actions = {
        "meta": ["GET"], "log": ["GET"], "start": ["POST"], "stop": ["POST"],
        "shutdown": ["POST"], "restart": ["POST"], "disable": ["POST"], "migrate": ["POST"],
        "unmigrate": ["POST"], "move": ["POST"],
    }

    @operation("GET", "/vm", summary="List VMs", tag=TAG, query=s.LIST_QUERY,
               responses={200: s.VM_LIST, 400: ERROR, 503: ERROR})
    def get_all(self, query: dict[str, Any]) -> Reply:
        ctx = current()
        ctx.cache.check_fresh()
        key = ("vm", ctx.cache.generation, query.get("node"), query.get("state"),
               query.get("tag"))
        cached = ctx.memo.get(key)
        if cached is None:
            running = present.running_uuids(ctx.cache.nodes())
            rows = [present.vm(r, running) for r in ctx.cache.vms()
                    if (query.get("node") in (None, r.placement.node))
                    and (query.get("state") in (None, r.state.state.value))
                    and (query.get("tag") is None or query["tag"] in r.meta.tags)]
            cached = encode_json(rows)
            ctx.memo.clear()  # one generation's lists at a time
            ctx.memo[key] = cached
        return Reply(cached, 200)

    @operation("GET", "/vm/{vm}", summary="One VM", tag=TAG,
               responses={200: s.VM, 400: ERROR, **_READ_ERRORS})
    def get_one(self, vm: str) -> dict[str, Any]:
        ctx = current()
        ctx.cache.check_fresh()
        return _show(ctx.cache.vm(vm))

    @pecan.expose()
    def post(self, *args: Any, **_params: Any) -> Any:
        """``POST /vm`` defines, ``POST /vm/{vm}`` sets metadata."""
        return self.define(*args) if not args else self.set_meta(*args)

    @operation("POST", "/vm", summary="Define a VM from domain XML with metadata", tag=TAG,
               body=s.DEFINE_BODY, status=201, responses={201: s.VM, **_ERRORS},
               exposed=False)
    def define(self, body: dict[str, Any]) -> dict[str, Any]:
        meta = {k: body[k] for k in s.META_FIELDS if k in body}
        with _meta_fields_at_top():
            record = define_vm(current().store, body["xml"], meta=meta,
                               node=body.get("target"), start=body.get("start", False), by=by())
        return _show(record)

    @operation("POST", "/vm/{vm}", summary="Set VM metadata", tag=TAG, body=s.META,
               responses={200: s.META_RESPONSE, **_ERRORS}, exposed=False)
    def set_meta(self, vm: str, body: dict[str, Any]) -> dict[str, Any]:
        with _meta_fields_at_top():
            return set_vm_meta(current().store, vm, **body).to_dict()

    @operation("GET", "/vm/{vm}/meta", summary="The VM's metadata", tag=TAG,
               responses={200: s.META_RESPONSE, **_READ_ERRORS})
    def meta(self, vm: str) -> dict[str, Any]:
        ctx = current()
        ctx.cache.check_fresh()
        return ctx.cache.vm(vm).meta.to_dict()

    @operation("DELETE", "/vm/{vm}", summary="Undefine a VM that is not running "
               "(disks=true: remove, which also removes its volumes)", tag=TAG,
               query=s.DELETE_QUERY, responses={200: s.VM, **_ERRORS})
    def delete(self, vm: str, query: dict[str, Any]) -> dict[str, Any]:
        ctx = current()
        if query.get("disks") and not ctx.config.storage.enabled:
            raise Conflict("the storage subsystem is disabled, so PVC manages no volumes of "
                           "this VM to remove: use undefine")
        record = ctx.store.vms.get(vm)
        shown = _show(record)
        remove_vm(ctx.store, record.uuid)
        return shown

    @operation("GET", "/vm/{vm}/log", summary="The tail of the VM's console log", tag=TAG,
               query=s.LOG_QUERY, responses={200: s.LOG_RESPONSE, 400: ERROR,
                                             **_READ_ERRORS})
    def log(self, vm: str, query: dict[str, Any]) -> dict[str, Any]:
        text = current().store.vms.get_console(vm)
        lines = text.splitlines()[-int(query["lines"]):] if text else []
        return {"lines": lines}

    # -- state ------------------------------------------------------------------

    @operation("POST", "/vm/{vm}/start", summary="Start the VM", tag=TAG,
               query=s.STATE_QUERY, body=s.STATE_BODY, responses=_WAITED)
    def start(self, vm: str, query: dict[str, Any], body: dict[str, Any]) -> Reply:
        return _state(vm, "start", query, body)

    @operation("POST", "/vm/{vm}/stop", summary="Stop the VM at once (power off)", tag=TAG,
               query=s.STATE_QUERY, body=s.STATE_BODY, responses=_WAITED)
    def stop(self, vm: str, query: dict[str, Any], body: dict[str, Any]) -> Reply:
        return _state(vm, "stop", query, body)

    @operation("POST", "/vm/{vm}/shutdown", summary="Shut the VM down gracefully "
               "(stopped after the shutdown timeout)", tag=TAG, query=s.STATE_QUERY,
               body=s.STATE_BODY, responses=_WAITED)
    def shutdown(self, vm: str, query: dict[str, Any], body: dict[str, Any]) -> Reply:
        return _state(vm, "shutdown", query, body)

    @operation("POST", "/vm/{vm}/restart", summary="Restart the VM", tag=TAG,
               query=s.STATE_QUERY, body=s.STATE_BODY, responses=_WAITED)
    def restart(self, vm: str, query: dict[str, Any], body: dict[str, Any]) -> Reply:
        return _state(vm, "restart", query, body)

    @operation("POST", "/vm/{vm}/disable", summary="Shut the VM down and keep it down "
               "(no autostart, not moved by flushes)", tag=TAG, query=s.STATE_QUERY,
               body=s.STATE_BODY, responses=_WAITED)
    def disable(self, vm: str, query: dict[str, Any], body: dict[str, Any]) -> Reply:
        return _state(vm, "disable", query, body)

    # -- placement --------------------------------------------------------------

    @operation("POST", "/vm/{vm}/migrate", summary="Migrate the VM (remembering where it "
               "was, for unmigrate); live first unless its migration method says "
               "otherwise, shutdown fallback unless force_live", tag=TAG, query=WAIT_QUERY,
               body=s.MIGRATE_BODY, responses=_WAITED)
    def migrate(self, vm: str, query: dict[str, Any], body: dict[str, Any]) -> Reply:
        record = migrate_vm(current().store, vm, body.get("target"),
                            live_only=body.get("force_live", False), by=by())
        return _waited(record, "migrate", query)

    @operation("POST", "/vm/{vm}/unmigrate", summary="Return a migrated VM to its "
               "previous node", tag=TAG, query=WAIT_QUERY, responses=_WAITED)
    def unmigrate(self, vm: str, query: dict[str, Any]) -> Reply:
        return _waited(unmigrate_vm(current().store, vm, by=by()), "migrate", query)

    @operation("POST", "/vm/{vm}/move", summary="Move the VM permanently (forgetting "
               "its previous node)", tag=TAG, query=WAIT_QUERY, body=s.MOVE_BODY,
               responses=_WAITED)
    def move(self, vm: str, query: dict[str, Any], body: dict[str, Any]) -> Reply:
        record = migrate_vm(current().store, vm, body.get("target"), permanent=True, by=by())
        return _waited(record, "migrate", query)
