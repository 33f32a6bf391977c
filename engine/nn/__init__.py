"""The networks: layers, models, the ResNet family and the detection grid."""
