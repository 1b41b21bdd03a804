"""The Celery application of the celery engine, built from settings in a function.

Celery only carries ``(run_id, node_key)`` messages of one task, ``terrapipe.run_node``;
the database decides what is ready. No result backend (results live in the run store),
``acks_late`` with ``reject_on_worker_lost`` (a message whose worker died goes back to the
queue), prefetch 1 (a long node does not sit on messages other workers could take).
A node's ``queue`` (or its task's) picks the Celery queue, ``TERRAPIPE_DEFAULT_QUEUE``
otherwise. Apps are cached per broker URL; they hold no run state.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from terrapipe.core.workflow import Workflow
from terrapipe.errors import InvalidInput

TASK_NAME = "terrapipe.run_node"
SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp")


class BrokerUnavailable(InvalidInput):
    """The Celery broker cannot be reached (or is not configured)."""


def safe_broker_url(url: str) -> str:
    """The broker URL with any password masked, fit for messages."""
    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        netloc = f"{parts.username or ''}:***@{host}"
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def check_broker_url(url: str | None) -> str:
    """The broker URL, or an InvalidInput naming TERRAPIPE_BROKER_URL."""
    if not url:
        raise BrokerUnavailable(
            "the celery engine needs a broker: set TERRAPIPE_BROKER_URL "
            "(redis://host:6379/0 or amqp://user:password@host:5672//)"
        )
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise BrokerUnavailable(
            f"TERRAPIPE_BROKER_URL {safe_broker_url(url)!r} is not a redis:// or amqp:// URL"
        )
    return url


def celery_app(broker_url: str | None, visibility_s: float | None = None) -> Any:
    """The Celery app for ``broker_url`` (one per URL and process; ``visibility_s`` from
    TERRAPIPE_BROKER_VISIBILITY_S unless given)."""
    if visibility_s is None:
        from terrapipe.settings import get_settings

        visibility_s = get_settings().broker_visibility_s
    return _celery_app(check_broker_url(broker_url), float(visibility_s))


@functools.lru_cache(maxsize=8)
def _celery_app(broker_url: str, visibility_s: float) -> Any:
    from celery import Celery

    app = Celery("terrapipe", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        task_routes=(_route,),
        broker_connection_timeout=3,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": visibility_s},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    from terrapipe.engines.celery.worker import run_node

    app.task(name=TASK_NAME, bind=False, acks_late=True)(run_node)
    return app


def _route(name: str, args: Any, kwargs: Any, options: dict, task: Any = None, **kw: Any) -> Any:
    """task_routes: a message goes to the queue its node names (given as ``queue``)."""
    if name == TASK_NAME and options.get("queue"):
        return {"queue": options["queue"]}
    return None


def generation(started_at: Any) -> str:
    """A run's generation: when it (last) started, in hex microseconds. A resumed run is a
    new generation, so its messages never share ids with those revoked by a cancel."""
    return format(int(started_at.timestamp() * 1e6), "x") if started_at is not None else "0"


def task_id(run_id: str, gen: str, key: str) -> str:
    """The Celery task id of a node's messages: known from the database alone, so
    ``runs cancel`` revokes the queued ones without a record of every message sent."""
    return f"{run_id}.{gen}.{key}"


def revoke(app: Any, ids: list[str], connection: Any = None) -> None:
    """Tell every worker to discard the messages with these task ids when they arrive (a
    queued node then never starts); running ones are left to ``ctx.cancelled``."""
    if ids:
        app.control.revoke(ids, connection=connection)


def queue_of(workflow: Workflow, name: str, default: str) -> str:
    return workflow.nodes[name].effective_queue or default


def enqueue(
    app: Any,
    run_id: str,
    workflow: Workflow,
    keys: Iterable[str],
    default_queue: str,
    *,
    gen: str = "0",
    countdown: float | None = None,
) -> int:
    """Publish one message per node key (task id :func:`task_id`, of generation ``gen``);
    a broker that cannot be reached raises BrokerUnavailable (one line, naming it).

    The messages go out in one batch (kombu's ``Producer.batch``: one Redis pipeline per
    thousand messages instead of a round trip and a client per message; a transport
    without batches publishes each at once). A batch that fails may have delivered part
    of itself: every message is then sent again one by one with kombu's reconnecting
    retries; if that fails too the caller marks the keys unsent for the sweeper. A
    duplicate message is harmless (the database says the node is taken or final)."""
    from kombu.exceptions import KombuError, OperationalError

    keys = list(keys)
    try:
        try:
            return _publish(app, run_id, gen, workflow, keys, default_queue, countdown, batch=True)
        except (OperationalError, KombuError, OSError):
            # e.g. the broker restarted under a pooled connection: send each message with
            # kombu's reconnecting retries (what the batch did send comes twice: harmless)
            return _publish(app, run_id, gen, workflow, keys, default_queue, countdown, batch=False)
    except (OperationalError, KombuError, OSError) as exc:
        url = safe_broker_url(app.conf.broker_url or "")
        raise BrokerUnavailable(f"cannot reach the Celery broker {url}: {exc}") from None


def _publish(
    app: Any,
    run_id: str,
    gen: str,
    workflow: Workflow,
    keys: list[str],
    default_queue: str,
    countdown: float | None,
    *,
    batch: bool,
) -> int:
    policy = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}
    sent = 0
    declared: set[str] = set()
    with app.producer_or_acquire() as producer:
        batched = batch and bool(getattr(producer, "supports_batch_publish", False))
        with producer.batch() if batched else contextlib.nullcontext() as pending:
            for key in keys:
                name = key.split("[", 1)[0] if key.endswith("]") else key
                args = (run_id, key)
                queue = queue_of(workflow, name, default_queue)
                app.send_task(
                    TASK_NAME,
                    args=args,
                    task_id=task_id(run_id, gen, key),
                    argsrepr=repr(args),  # Celery's own saferepr costs more
                    kwargsrepr="{}",
                    queue=queue,
                    countdown=countdown,
                    producer=producer,
                    retry=not batched,  # a batch is sent at its end: failures there
                    retry_policy=policy,
                    # the queue is declared with its first message of this call (kombu
                    # then skips it on this connection): not looked up for every message
                    declare=None if queue not in declared else (),
                )
                declared.add(queue)
                sent += 1
                if pending is not None and sent == EARLY_FLUSH:
                    pending.flush()  # idle workers start while the rest is built
    return sent


# A fan-out's first messages go out on their own: building a thousand messages takes a
# tenth of a second, which other workers would otherwise spend waiting for the batch.
EARLY_FLUSH = 8
