"""Offline converters: dataset readers, TIM, TFRecord writer (`python -m data_prep`)."""
