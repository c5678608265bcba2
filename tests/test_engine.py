"""The SpatiaLite engine coexists with the geo libraries that bundle their own PROJ/GEOS."""

import subprocess
import sys
import textwrap


def test_geo_libraries_used_after_spatialite_loads_exit_cleanly(tmp_path):
    # SQLite loads mod_spatialite with RTLD_GLOBAL; pyproj first imported after that used to
    # bind to Debian's PROJ and abort at interpreter exit (double free).
    script = textwrap.dedent(f"""
        from sqlalchemy import text
        from gridsvc.storage.engine import make_engine
        engine = make_engine("sqlite:///{tmp_path}/x.sqlite")
        with engine.connect() as conn:
            print(conn.execute(text("SELECT spatialite_version()")).scalar())
        import pyproj
        print(pyproj.Transformer.from_crs(4326, 4549, always_xy=True).transform(120.9, 32.0))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "corruption" not in done.stderr
