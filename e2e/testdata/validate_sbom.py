# Validates an SPDX 2.3 document with the SPDX reference tools (spdx-tools)
# and a CycloneDX 1.6 document against its JSON schema (cyclonedx-python-lib).
# Usage: validate_sbom.py SPDX.json CDX.json; exit 1 on any finding.
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

spdx_path, cdx_path = sys.argv[1], sys.argv[2]
doc = parse_file(spdx_path)
msgs = validate_full_spdx_document(doc, "SPDX-2.3")
for m in msgs[:20]:
    print("SPDX:", m.validation_message)
err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(cdx_path).read())
if err:
    print("CycloneDX:", err)
sys.exit(1 if msgs or err else 0)
