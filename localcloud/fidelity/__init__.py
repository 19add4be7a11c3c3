"""localcloud fidelity, measured: Google's recorded HTTP traffic replayed against localcloud and diffed.

recording (parse the Config Connector logs) -> replay (send them to localcloud) -> compare (structural
diff after the recorder's normalisation) -> known (what the recording itself explains) -> report.
``python -m localcloud.fidelity`` (``make fidelity``) runs it all; tests/contract/test_fidelity.py gates it.
"""
