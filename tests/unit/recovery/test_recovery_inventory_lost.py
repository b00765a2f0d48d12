"""The inventory's PostgreSQL cuts the engine's connections mid-recovery (a server
restarted, a failover): the run is an environment problem (exit 3, "no verdict"), not a
failed recovery and not a database traceback; and the journal's committed steps let a
new engine finish the recovery."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from recovery_fakes import FakeLab
from sqlalchemy import create_engine, make_url, text
from test_recovery_capacity import assert_each_started_once_after_fencing, rack

from stackdrill.recovery import RecoveryConfig, RecoveryEngine
from stackdrill.recovery.dburl import InventoryLost, InventoryTarget, run_namespace


def test_connections_cut_mid_recovery_are_an_infrastructure_error_and_a_new_engine_resumes(
        postgres_server: InventoryTarget, tmp_path: Path) -> None:
    assert postgres_server.url is not None
    app = f"sd_cut_{os.getpid()}"  # only this test's connections are cut
    admin = create_engine(postgres_server.url, isolation_level="AUTOCOMMIT")

    def cut() -> None:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE application_name = :app"), {"app": app})

    topo = rack(instances=6, targets=1, backends=1, storage_vcpus=16)
    lab = FakeLab(topo)
    lab.clock.at(60, lambda: lab.crash("cmp00"))
    lab.clock.at(92, cut)  # fenced at 85 s; the 6 guests are starting (10 s) elsewhere
    with run_namespace(postgres_server, tmp_path, "cut") as own:
        url = make_url(own).update_query_dict({"application_name": app})
        url_text = url.render_as_string(hide_password=False)
        engine = RecoveryEngine(topo, lab.drivers, lab.clock, url_text, RecoveryConfig())
        with pytest.raises(InventoryLost) as lost:
            engine.run(until=3600)
        assert lost.value.exit_code == 3
        assert "inventory database was lost at lab time 98" in str(lost.value)
        assert "terminating connection" in str(lost.value)
        again = RecoveryEngine(topo, lab.drivers, lab.clock, url_text,
                               RecoveryConfig(lease_wait_s=60.0))
        result = again.run(until=3600)
    admin.dispose()
    assert_each_started_once_after_fencing(lab, result)
