"""The pvc commands, one cliff class per ``<object> <action>`` (entry points in ``pvc.cli``)."""
