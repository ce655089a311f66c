"""The console's pure core: who is signed in and what they may see and do, the escalation
queue's order and SLA clock, the inbox, a patient's story, the forms' validation. No I/O."""
