"""rclpy nodes: parameters, QoS and message conversion only; logic lives in the core library.

Every node runs as its own process: ``python -m exoactor.nodes.<module>`` or ``ros2 run exoactor <executable>``.
"""
