"""The benchmark suite (issue 7): ``python -m bench [--quick]``.

Every figure that has a natural baseline is measured next to it in the same run and printed as a
ratio, because the machines this runs on are small and noisy. One command runs everything, prints
a table and writes ``BENCHMARKS.md`` (see ``bench.__main__``).

Layout, one concept per module:

``report``          ``Row`` (one line of the table), machine facts, the table and the Markdown file
``stats``           percentiles and run summaries
``processes``       every child process, started with a parent-death signal and ended by PID
``wire``            a light asyncio HTTP/1.1 (and line-protocol) client, so the client is not the
                    bottleneck; shared by the load generator and the in-process benchmarks
``clusters``        a 3-replica overlay-master cluster (the test harness's) and a raw PySyncObj
                    cluster (``raw_counter``) with the master's exact ``SyncObjConf``
``loadgen``         the load generator process (throughput, watchers), separate from the runner
``floor``           the bare uvicorn/FastAPI endpoint serving pre-encoded bytes (state baseline)
``allocator_bench``, ``failover``, ``throughput``, ``convergence``, ``state_endpoint``, ``footprint``
                    one benchmark each: ``run(ctx) -> list[Row]``

Agent benchmarks live in ``bench/agent_*.py`` (owned by the agent engineer). The runner imports
each such module and calls ``run(quick: bool)``, which returns a list of ``bench.report.Row`` (or
of dicts with ``Row``'s field names); a module that raises becomes one row saying so.
"""
