"""Agent2Agent (A2A, the ``a2a-sdk`` package) both ways: A2A agents as hive agents
(``bridge``), and the hive as an A2A agent (``server``)."""
