"""Run one approved algorithm, in a process of its own: ``python -m giftcloud_api.jobs.child
NAME DIGEST INPUTS PARAMETERS OUTPUT IMAGES``. The module is executed from the bytes read here,
and only when they have the approved digest, so what runs is what the site's admin
approved even if the file changed since. The function is called with the folder of the
cohort's de-identified instances and the job's parameters (and, when it takes a third, the
folder IMAGES where it writes derived DICOM images, which stay at the site:
:mod:`giftcloud_api.jobs.images`); what it returns is written to OUTPUT as JSON. A failure is one line on stderr and exit code 1."""

from __future__ import annotations

import inspect
import json
import sys
import types
from pathlib import Path

from giftcloud_api.jobs.algorithms import digest, installed


def main(argv: list[str]) -> int:
    name, approved, inputs, parameters, output, images = argv
    algorithm = installed().get(name)
    if algorithm is None:
        print(f"no algorithm {name} is installed", file=sys.stderr)
        return 1
    source = algorithm.source()
    if digest(source) != approved:
        print(f"{name}'s code is not the approved code (digest {digest(source)})", file=sys.stderr)
        return 1
    module = types.ModuleType(algorithm.module)
    module.__file__ = str(algorithm.path)
    sys.modules[algorithm.module] = module
    exec(compile(source, str(algorithm.path), "exec"), module.__dict__)  # noqa: S102 - approved bytes
    run = getattr(module, algorithm.function)
    try:
        arguments = [Path(inputs), json.loads(Path(parameters).read_text())]
        if len(inspect.signature(run).parameters) == 3:  # it makes images too
            arguments.append(Path(images))
        result = run(*arguments)
        Path(output).write_text(json.dumps(result))
    except Exception as exc:  # the algorithm's own failure, said in one line
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
