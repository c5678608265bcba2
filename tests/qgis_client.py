"""Run by Debian's /usr/bin/python3 (python3-qgis, QGIS 3.22), not by pytest: reads every
layer of /ogc through QGIS's OAPIF provider with Basic authentication (the token as the
password), one connection per token, all in one QGIS process, and prints what QGIS saw as
JSON. Usage: qgis_client.py BASE_URL JSON, JSON = {"connections": {name: token},
"levels": [...], "srsname": "" or "EPSG:4549" (then each layer's first vertex is also
reprojected there by QGIS)}. tests/test_ogc_clients.py runs it."""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (
    QgsApplication,
    QgsAuthMethodConfig,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsProject,
    QgsVectorLayer,
)


def main() -> None:
    base, spec = sys.argv[1], json.loads(sys.argv[2])
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    auth = QgsApplication.authManager()
    auth.setMasterPassword("gridsvc-test", True)
    out: dict = {}
    for name, token in spec["connections"].items():
        config = QgsAuthMethodConfig("Basic")
        config.setName(name)
        config.setConfig("username", "qgis")
        config.setConfig("password", token)
        assert auth.storeAuthenticationConfig(config)[0], "auth config not stored"
        seen = out[name] = {}
        for key in spec["levels"]:
            uri = f"url='{base}' typename='{key}' authcfg={config.id()}"
            layer = QgsVectorLayer(uri, key, "OAPIF")
            if not layer.isValid():
                seen[key] = {"valid": False, "error": layer.error().summary()}
                continue
            features = list(layer.getFeatures(QgsFeatureRequest()))
            first = features[0].geometry() if features else None
            point = first.vertexAt(0) if first is not None else None
            seen[key] = {
                "valid": True, "count": layer.featureCount(), "read": len(features),
                "codes": sorted(str(f["code"]) for f in features),
                "names": sorted(str(f["name"]) for f in features),
                "fields": {f.name(): f.typeName() for f in layer.fields()},
                "crs": layer.crs().authid(),
                "first": [point.x(), point.y()] if point is not None else None,
            }
            if spec.get("srsname") and first is not None:
                # QGIS 3.22 asks for CRS84 only and reprojects on the fly, as a project in
                # a Gauss-Krüger zone shows the layer
                target = QgsCoordinateReferenceSystem(spec["srsname"])
                moved = first.asPoint() if first.type() == 0 else first.vertexAt(0)
                transform = QgsCoordinateTransform(layer.crs(), target, QgsProject.instance())
                projected = transform.transform(moved.x(), moved.y())
                seen[key]["projected"] = [projected.x(), projected.y()]
    print(json.dumps(out, ensure_ascii=False), flush=True)
    os._exit(0)  # QGIS 3.22's exitQgis() crashes headless (SIGSEGV) after the work is done


main()
