"""The benchmark's profile summary: py-spy's collapsed stacks charged to libraries and our lines."""

from __future__ import annotations

from devstack.profile import categorise, shares

COLLAPSED = "\n".join(
    [
        "run (caf_runtime/service.py:100);handle_once (caf_runtime/ledger.py:140);"
        "transact (caf_runtime/ledger.py:95);_make_api_call (aiobotocore/client.py:406);"
        "_send (botocore/endpoint.py:303) 6",
        "run (caf_runtime/service.py:100);_run_once (asyncio/base_events.py:1922) 3",
        "run (caf_runtime/service.py:100);on_event (services/notifier/handlers.py:49);"
        "notifications_for (services/notifier/rules.py:80) 1",
        "Selectors module.",  # py-spy folds some multi-line names onto lines of their own
    ]
)


def test_samples_are_charged_to_the_library_of_the_innermost_frame() -> None:
    profile = categorise(COLLAPSED)

    assert profile.total == 10
    assert shares(profile.libraries) == {
        "DynamoDB client (botocore)": 0.6,
        "event loop": 0.3,
        "our code": 0.1,
    }


def test_samples_are_charged_to_the_deepest_line_of_our_code_on_the_stack() -> None:
    profile = categorise(COLLAPSED)

    assert profile.call_sites == {
        "caf_runtime/ledger.py:transact": 6,
        "no handler on the stack (event loop, Kafka client tasks)": 3,
        "services/notifier/rules.py:notifications_for": 1,
    }
