"""From camera images to the model's inputs and a reward: conversion, crop-resize,
synchronisation, the newest-set mailbox and the debug picture; no rclpy."""
