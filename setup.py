"""ament_python build of hil_serl_reward (also pip-installable into a plain venv)."""
from glob import glob

from setuptools import find_packages, setup

package_name = 'hil_serl_reward'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.xml')),
        ('share/' + package_name + '/config/examples', glob('config/examples/*.yaml')),
    ],
    install_requires=['setuptools'],
    # setuptools >= 72 ignores tests_require; colcon reads the 'test' extra instead.
    # `rl`: the gymnasium wrapper (hil_serl_reward.gym_wrapper); the node does not need it.
    extras_require={'test': ['pytest'], 'rl': ['gymnasium>=1.0']},
    zip_safe=True,
    maintainer='hil_serl_reward developers',
    maintainer_email='hil-serl-reward@example.org',
    description='HIL-SERL reward classifier served on synchronised ROS 2 camera streams.',
    license='MIT',
    entry_points={
        'console_scripts': [
            'camera_sim = hil_serl_reward.ros.node_executables:camera_sim',
            'classifier_node = hil_serl_reward.ros.node_executables:classifier_node',
            'evaluate = hil_serl_reward.tools.evaluate:main',
            'hil_serl_demo = hil_serl_reward.tools.demo:main',
            'inspect_checkpoint = hil_serl_reward.tools.inspect_checkpoint:main',
            'preview_crops = hil_serl_reward.tools.preview_crops:main',
            'record_data = hil_serl_reward.ros.node_executables:record_data',
            'train_classifier = hil_serl_reward.tools.train_classifier:main',
        ],
    },
)
