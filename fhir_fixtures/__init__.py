"""The synthetic fixture patients and the EHR side of a hook call: test and sandbox tooling.

``ehr`` reads the fixture bundles and answers the service's prefetch templates from them as a CDS
client would; ``build`` writes the bundles from ``patients/*.yaml``. The service itself never
imports this package, except its optional sandbox and the developer commands of ``sarcoma-cds``.
"""
