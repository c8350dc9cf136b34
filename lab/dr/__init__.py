"""Disaster recovery of the regional chat stores: scheduled physical backups with a retention
policy, and a restore that rebuilds a lost store from its last backup, then replays from
JetStream what came after (docs/dr.md).

Modules: ``policy`` (the topology's ``backups:`` section and the retention rule, pure),
``catalog`` (backups and their manifests on disk), ``jetstream`` (the stream position a backup
covers, and the replay), ``backup``, ``restore``, ``scheduler`` (the lab process that takes
backups on a schedule). Kept import-light: ``lab.topology`` imports ``lab.dr.policy``.
"""
