"""Bad input through the command line and the Python API: unreadable or invalid pool files, unknown models, negative,
NaN, infinite and zero budgets, unknown topologies, empty or broken data sets, corrupt experience tables and policy
checkpoints, bad call settings. Each is one line that names the thing and the fix, exit status 2, no traceback.

Most command-line cases call `bamas_nb.cli.main` in this process (what the `bamas` script runs, minus seconds of
start-up); three run the installed script itself to check the exit status and the output a user sees."""
import json, math
from pathlib import Path
import pytest, yaml
from reliability_helpers import pool_dict, one_line_error, run_cli
from bamas_nb import cli
from bamas_nb.core import BamasError, LLM, load_pool
from bamas_nb.meter import Meter
from bamas_nb.ilp import select_llms
from bamas_nb.tasks import load_tasks
from bamas_nb.topologies import run_topology
from bamas_nb.experience import ExperienceStore, generate

LOCAL = 'data/pools/local.yaml'    # only for `select`, which never calls a model
DEAD = 'http://127.0.0.1:9/v1'     # nothing listens on port 9 (discard): a call that should not happen fails at once
UNKNOWN_MODEL = {'llms': [dict(name='mystery', model='nonsense-model', api_base='http://127.0.0.1:9/v1', tier=1, in_price=0.1,
                               out_price=0.4, max_tokens=16)]}

@pytest.fixture(scope='module')
def files(tmp_path_factory):
    "Every kind of bad file, made once."
    d = tmp_path_factory.mktemp('bad')
    def w(name, text): (d/name).write_text(text); return d/name
    f = {'missing': d/'missing.yaml', 'dir': d, 'binary': d/'binary.yaml', 'text': w('prompt.txt', 'What is 2+2?')}
    f['binary'].write_bytes(b'\xff\xfe\x00\x01 not text')
    f['invalid'] = w('invalid.yaml', 'llms: [a, b')
    f['shape'] = w('shape.yaml', '- just\n- a list\n')
    f['negative'] = w('negative.yaml', yaml.safe_dump({'llms': [dict(pool_dict('http://127.0.0.1:9/v1')['llms'][0], in_price=-1)]}))
    f['extra_key'] = w('extra.yaml', yaml.safe_dump({'llms': [dict(pool_dict('http://127.0.0.1:9/v1')['llms'][0], api_key='sk-x')]}))
    f['unknown_model'] = w('unknown_model.yaml', yaml.safe_dump(UNKNOWN_MODEL))
    f['dead'] = w('dead.yaml', yaml.safe_dump(pool_dict(DEAD)))   # a valid pool whose server is not there: no case may reach a model
    (d/'corrupt_exp').mkdir(); (d/'corrupt_exp'/'part-00000000000000000001-abcdef.parquet').write_bytes(b'PAR1 torn')
    (d/'empty_exp').mkdir()
    f['corrupt_exp'], f['empty_exp'], f['corrupt_parquet'] = d/'corrupt_exp', d/'empty_exp', w('table.parquet', 'not parquet')
    f['junk_ckpt'] = w('junk.pt', 'not a checkpoint')
    (d/'cut.pt').write_bytes(b'PK\x03\x04' + b'\x00'*40); f['cut_ckpt'] = d/'cut.pt'      # a zip (torch format) cut short
    data = d/'data'; (data/'gsm8k').mkdir(parents=True)
    (data/'gsm8k'/'test.jsonl').write_text('')                                                # an empty data set
    (data/'gsm8k'/'train.jsonl').write_text('{"q": "no question field"}\n')                   # records of the wrong shape
    (data/'mbpp').mkdir(); (data/'mbpp'/'mbpp.jsonl').write_text('{"task_id": 1, "text": "Write a fun')   # a file cut short
    f['data'] = data
    return f

# (command line, what the message must name, what it must say to do)
CASES = {
    'pool missing':        (['select', '--pool', '{missing}', '--budget', 1000], 'missing.yaml: cannot read pool file', 'check the path'),
    'pool is a directory': (['select', '--pool', '{dir}', '--budget', 1000], 'cannot read pool file (Is a directory)', 'check the path'),
    'pool not text':       (['select', '--pool', '{binary}', '--budget', 1000], 'binary.yaml: not a text file', 'check the path'),
    'pool invalid YAML':   (['select', '--pool', '{invalid}', '--budget', 1000], 'invalid.yaml: not valid YAML', 'fix the syntax'),
    'pool wrong shape':    (['select', '--pool', '{shape}', '--budget', 1000], 'shape.yaml: expected a top-level `llms:` list', 'LLM entries'),
    'pool bad field':      (['select', '--pool', '{negative}', '--budget', 1000], "llms[0] ('strong'): in_price", 'must be a number ≥ 0'),
    'pool unknown key':    (['select', '--pool', '{extra_key}', '--budget', 1000], "unknown key(s) api_key", 'allowed keys are'),
    'unknown LLM':         (['call', '--pool', '{dead}', '--llm', 'gpt-7', '--budget', 1000, '--prompt-file', '{text}'], "unknown LLM 'gpt-7'", 'the pool has'),
    'unknown model call':  (['call', '--pool', '{unknown_model}', '--llm', 'mystery', '--budget', 1e6, '--prompt-file', '{text}', '--cache', 'off'],
                            "mystery: model 'nonsense-model' is not an id litellm can route", 'write provider/model'),
    'unknown model grid':  (['generate', '--pool', '{unknown_model}', '--dataset', 'mini-math', '--n', 1, '--budgets', 1e6, '--out', '{tmp}/g1'],
                            "mystery: model 'nonsense-model'", 'write provider/model'),
    'budget negative':     (['select', '--pool', LOCAL, '--budget', -5], 'budget must be > 0 µ$', 'pass a positive amount'),
    'budget zero':         (['select', '--pool', LOCAL, '--budget', 0], 'budget must be > 0 µ$', 'pass a positive amount'),
    'budget NaN':          (['select', '--pool', LOCAL, '--budget', 'nan'], "budget must be finite, got 'nan'", 'pass e.g. 1250'),
    'budget inf':          (['call', '--pool', '{dead}', '--llm', 'cheap', '--budget', 'inf', '--prompt-file', '{text}'], 'budget must be finite', 'pass e.g.'),
    'budget not a number': (['select', '--pool', LOCAL, '--budget', 'lots'], "got 'lots'", 'pass e.g. 1250'),
    'budgets NaN in grid': (['generate', '--pool', '{dead}', '--dataset', 'mini-math', '--budgets', '500,nan', '--out', '{tmp}/g2'], '--budgets: budget must be finite', 'pass e.g.'),
    'budgets negative':    (['generate', '--pool', '{dead}', '--dataset', 'mini-math', '--budgets', '-1', '--out', '{tmp}/g2'], '--budgets: budget must be > 0', 'pass a positive'),
    'budgets none':        (['generate', '--pool', '{dead}', '--dataset', 'mini-math', '--budgets', ',', '--out', '{tmp}/g2'], '--budgets: no budget given', 'pass e.g.'),
    'budget zero run':     (['run', '--pool', '{dead}', '--dataset', 'mini-math', '--budget', 0], 'budget must be > 0', 'pass a positive'),
    'topology grid':       (['generate', '--pool', '{dead}', '--dataset', 'mini-math', '--topologies', 'linear,mesh', '--out', '{tmp}/g3'], "unknown topology 'mesh'", 'choose one of'),
    'topology run':        (['run', '--pool', '{dead}', '--dataset', 'mini-math', '--budget', 1000, '--topology', 'mesh'], "unknown topology 'mesh'", 'choose one of'),
    'no tasks':            (['generate', '--pool', '{dead}', '--dataset', 'mini-math', '--n', 0, '--out', '{tmp}/g4'], 'no tasks to run', 'check --dataset/--split/--n'),
    'unknown data set':    (['generate', '--pool', '{dead}', '--dataset', 'gsm9k', '--out', '{tmp}/g4'], "unknown data set 'gsm9k'", 'choose one of'),
    'unknown split':       (['generate', '--pool', '{dead}', '--dataset', 'mini-math', '--split', 'dev', '--out', '{tmp}/g4'], "no split 'dev'", 'choose one of'),
    'empty data file':     (['generate', '--pool', '{dead}', '--dataset', 'gsm8k', '--split', 'test', '--out', '{tmp}/g4'], 'test.jsonl: the file is empty', 'replace it'),
    'broken data file':    (['generate', '--pool', '{dead}', '--dataset', 'gsm8k', '--split', 'train', '--out', '{tmp}/g4'], 'gsm8k (train): a record', 'replace that data file'),
    'cut data file':       (['generate', '--pool', '{dead}', '--dataset', 'mbpp', '--out', '{tmp}/g4'], 'mbpp.jsonl: not readable as JSON Lines', 'replace it'),
    'corrupt table part':  (['generate', '--pool', '{dead}', '--dataset', 'mini-math', '--out', '{corrupt_exp}'], 'part-00000000000000000001-abcdef.parquet: not a readable experience part', 'delete it and resume'),
    'out is a file':       (['generate', '--pool', '{dead}', '--dataset', 'mini-math', '--out', '{text}'], 'prompt.txt: an experience table is a directory', 'choose a directory path'),
    'train corrupt part':  (['train', '--experience', '{corrupt_exp}', '--out', '{tmp}/p.pt'], 'not a readable experience part', 'delete it and resume'),
    'train corrupt file':  (['train', '--experience', '{corrupt_parquet}', '--out', '{tmp}/p.pt'], 'table.parquet: not a readable experience table', 'regenerate it'),
    'train empty table':   (['train', '--experience', '{empty_exp}', '--out', '{tmp}/p.pt'], 'the experience table is empty', 'generate one with `bamas generate`'),
    'train missing table': (['train', '--experience', '{tmp}/nowhere', '--out', '{tmp}/p.pt'], 'nowhere: no such experience table', 'generate one'),
    'timeout zero':        (['generate', '--pool', '{dead}', '--dataset', 'mini-math', '--out', '{tmp}/g5', '--timeout', 0], '--timeout must be a number of seconds > 0', 'got 0'),
    'attempts zero':       (['generate', '--pool', '{dead}', '--dataset', 'mini-math', '--out', '{tmp}/g5', '--attempts', 0], '--attempts must be ≥ 1', '1 = no retries'),
    'call timeout':        (['call', '--pool', '{dead}', '--llm', 'cheap', '--budget', 1000, '--prompt-file', '{text}', '--timeout', -1], 'timeout must be a number of seconds > 0', 'got -1'),
}

@pytest.mark.parametrize('case', list(CASES))
def test_cli_bad_input_is_one_line_naming_the_thing_and_the_fix(case, files, tmp_path):
    argv, thing, fix = CASES[case]
    argv = [str(a).format(tmp=tmp_path, **files) for a in argv]
    env = {'BAMAS_DATA': files['data'], 'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1', 'BAMAS_CACHE': tmp_path/'c.sqlite',
           'BAMAS_ATTEMPTS': 1, 'BAMAS_TIMEOUT': 5}
    rc, out, err = run_cli(*argv, '--json', env=env)
    assert rc == 2, (rc, out, err)
    assert one_line_error(err, argv[0]), err
    msg = json.loads(out)['error']
    assert thing in msg and fix in msg, msg
    assert not list(Path(tmp_path).glob('g*/part-*.parquet'))                 # nothing ran

def test_corrupt_checkpoint_through_the_demo_command(files):
    if 'demo' not in cli.COMMANDS: pytest.skip('no command loads a checkpoint yet')
    for ck in (files['junk_ckpt'], files['cut_ckpt']):
        rc, out, err = run_cli('demo', '--policy', ck, '--replay', '07_bamas', '--json')       # replay: no model servers
        assert rc == 2 and one_line_error(err, 'demo'), err
        assert f'{ck}: not a readable policy checkpoint' in json.loads(out)['error'] and 'retrain it' in err

@pytest.mark.parametrize('case', ['pool invalid YAML', 'budget NaN', 'corrupt table part'])
def test_the_installed_script_exits_2_with_one_line(case, files, tmp_path, bamas):
    argv, thing, fix = CASES[case]
    rc, out, err = bamas(*[str(a).format(tmp=tmp_path, **files) for a in argv])
    assert rc == 2 and out == '' and one_line_error(err, argv[0]) and thing in err and fix in err, (rc, out, err)

# --- the Python API ---

def api_cases(f, tmp):
    pool = load_pool(f['dead'])
    task = load_tasks('mini-math', n=1)[0]
    def unknown_model_call():
        Meter(1e6, cache=None).call(LLM('mystery', 'nonsense-model', 1, 0.1, 0.4, 16, 'http://127.0.0.1:9/v1'), 'hi')
    def policy(p):
        from bamas_nb.policy import load_policy
        return lambda: load_policy(p)
    return {
        'load_pool missing':    (lambda: load_pool(f['missing']), 'cannot read pool file', 'check the path'),
        'load_pool binary':     (lambda: load_pool(f['binary']), 'not a text file', 'check the path'),
        'load_pool invalid':    (lambda: load_pool(f['invalid']), 'not valid YAML', 'fix the syntax'),
        'pool unknown LLM':     (lambda: pool['gpt-7'], "unknown LLM 'gpt-7'", 'the pool has'),
        'unknown model':        (unknown_model_call, "model 'nonsense-model' is not an id litellm can route", 'write provider/model'),
        'Meter negative':       (lambda: Meter(-1, cache=None), 'budget must be > 0', 'pass a positive'),
        'Meter NaN':            (lambda: Meter(math.nan, cache=None), 'budget must be finite', 'pass e.g.'),
        'Meter zero':           (lambda: Meter(0, cache=None), 'budget must be > 0', 'pass a positive'),
        'Meter inf':            (lambda: Meter(math.inf, cache=None), 'budget must be finite', 'pass e.g.'),
        'Meter timeout':        (lambda: Meter(10, cache=None, timeout=0), 'timeout must be a number of seconds > 0', 'got 0'),
        'select NaN':           (lambda: select_llms(pool, math.nan), 'budget must be finite', 'pass e.g.'),
        'select negative':      (lambda: select_llms(pool, -3), 'budget must be > 0', 'pass a positive'),
        'topology':             (lambda: run_topology('mesh', task, select_llms(pool, 1250)), "unknown topology 'mesh'", 'choose one of'),
        'generate NaN budget':  (lambda: generate([task], [math.nan], ['linear'], pool, tmp/'a', progress=False), 'budget must be finite', 'pass e.g.'),
        'generate topology':    (lambda: generate([task], [1250], ['mesh'], pool, tmp/'a', progress=False), "unknown topology 'mesh'", 'choose one of'),
        'generate no tasks':    (lambda: generate([], [1250], ['linear'], pool, tmp/'a', progress=False), 'the task list is empty', 'check --dataset'),
        'load_tasks unknown':   (lambda: load_tasks('gsm9k'), "unknown data set 'gsm9k'", 'choose one of'),
        'load_tasks n':         (lambda: load_tasks('mini-math', n=-1), 'n must be a whole number ≥ 0', 'got -1'),
        'corrupt part':         (lambda: ExperienceStore(f['corrupt_exp']).read(), 'not a readable experience part', 'delete it and resume'),
        'checkpoint junk':      (policy(f['junk_ckpt']), 'junk.pt: not a readable policy checkpoint', 'retrain it'),
        'checkpoint cut':       (policy(f['cut_ckpt']), 'cut.pt: not a readable policy checkpoint', 'retrain it'),
        'checkpoint missing':   (policy(f['missing']), 'no such checkpoint', 'train one with'),
    }

API = list(api_cases({k: Path(LOCAL) for k in ('missing', 'binary', 'invalid', 'corrupt_exp', 'junk_ckpt', 'cut_ckpt', 'dead')}, Path('x')))

@pytest.mark.parametrize('case', API)
def test_api_bad_input_raises_one_line_bamas_error(case, files, tmp_path):
    fn, thing, fix = api_cases(files, tmp_path)[case]
    with pytest.raises(BamasError) as e: fn()
    msg = str(e.value)
    assert '\n' not in msg and thing in msg and fix in msg, msg

# --- a data set of one's own: bad files, through every command that takes --dataset ---

USER_FILES = {   # name -> contents (None: the file is not there)
    'missing.jsonl': None,
    'empty.jsonl': '',
    'no_answer.jsonl': '{"question": "What is 2 + 2?", "answer": 4}\n{"question": "And 3 + 3?"}\n',
    'tests_string.jsonl': '{"prompt": "Write f.", "tests": "assert f() == 1"}\n',
    'tests_item.jsonl': '{"prompt": "Write f.", "tests": ["assert f() == 1", 7]}\n',
    'dup.jsonl': '{"id": 1, "question": "q1", "answer": 1}\n{"id": 2, "question": "q2", "answer": 2}\n{"id": 1, "question": "q3", "answer": 3}\n',
    'notes.txt': 'What is 2 + 2?',
    'bad_line.jsonl': '{"question": "q", "answer": 1}\n{"question": "q2", answer: 2}\n',
    'shapeless.jsonl': '{"Problem": "q", "Solution": 1}\n',
    'no_check.jsonl': '{"prompt": "def f():", "test": "assert f() == 1", "entry_point": "f"}\n',
    'ragged.csv': 'question,answer\nWhat is 1 + 1?,2\nWhat is 2 + 2?,4,extra\n',
    'header_only.csv': 'question,answer\n',
    'not_parquet.parquet': 'not parquet at all',
    'scalar.json': '42',
}
# file -> what the one line must say: the file, the row and the field, then the fix
USER_CASES = {
    'missing.jsonl':       ('missing.jsonl: no such file', 'check the path'),
    'empty.jsonl':         ('empty.jsonl: the file is empty', 'one task per row'),
    'no_answer.jsonl':     ("no_answer.jsonl, row 1, field 'answer': missing", '--field answer=COLUMN'),
    'tests_string.jsonl':  ("tests_string.jsonl, row 0, field 'tests': must be a list of assert statements, got str", 'write ["assert f(1) == 2", ...]'),
    'tests_item.jsonl':    ("tests_item.jsonl, row 0, field 'tests': item 1 is 7, not an assert statement", 'make every item a string'),
    'dup.jsonl':           ("dup.jsonl, row 2, field 'id': duplicate id '1' (row 0 has it too)", 'give every row its own id'),
    'notes.txt':           ("notes.txt: unknown format '.txt'", 'name it .jsonl, .json, .csv or .parquet'),
    'bad_line.jsonl':      ('bad_line.jsonl, row 1 (line 2): not valid JSON', 'one JSON object per line'),
    'shapeless.jsonl':     ('shapeless.jsonl, row 0: cannot tell the task format from its fields (Problem, Solution)', '--field question=COLUMN'),
    'no_check.jsonl':      ("no_check.jsonl, row 0, field 'test': does not define check(candidate)", 'def check(candidate):'),
    'ragged.csv':          ('ragged.csv, row 1 (line 3): 3 cells, but the header has 2', 'quote cells'),
    'header_only.csv':     ('header_only.csv: holds no rows', 'one task per row'),
    'not_parquet.parquet': ('not_parquet.parquet: not readable as parquet', 'check that it is a parquet file'),
    'scalar.json':         ('scalar.json: holds a JSON int, not an array of rows', 'write [{...}, {...}]'),
}
USER_COMMANDS = {   # how each command names a data set; {f} is the file, {tmp} a scratch folder that must stay empty
    'tasks':    ['tasks', '--dataset', '{f}'],
    'grade':    ['grade', '--dataset', '{f}', '--id', '0', '--answer', '4'],
    'run':      ['run', '--pool', '{dead}', '--dataset', '{f}', '--budget', 1000, '--topology', 'naive'],
    'generate': ['generate', '--pool', '{dead}', '--dataset', '{f}', '--budgets', 1000, '--topologies', 'naive', '--out', '{tmp}/exp'],
    'demo':     ['demo', '--datasets', '{f}', '--replay', '07_bamas'],
}

@pytest.fixture(scope='module')
def user_files(tmp_path_factory):
    d = tmp_path_factory.mktemp('user')
    for name, text in USER_FILES.items():
        if text is not None: (d/name).write_text(text)
    return d

@pytest.mark.parametrize('command', list(USER_COMMANDS))
@pytest.mark.parametrize('case', list(USER_CASES))
def test_bad_data_file_is_one_line_naming_file_row_and_field(case, command, user_files, files, tmp_path):
    if command in ('run', 'generate', 'demo') and case not in ('missing.jsonl', 'no_answer.jsonl', 'tests_string.jsonl', 'dup.jsonl', 'notes.txt', 'empty.jsonl'):
        pytest.skip('every case runs through tasks and grade; the commands that start models get the six named in the issue')
    thing, fix = USER_CASES[case]
    argv = [str(a).format(f=user_files/case, tmp=tmp_path, dead=files['dead']) for a in USER_COMMANDS[command]]
    rc, out, err = run_cli(*argv, env={'BAMAS_CACHE': tmp_path/'c.sqlite', 'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1'})
    assert (rc, out) == (2, ''), (rc, out, err)
    assert one_line_error(err, command) and thing in err and fix in err, err
    assert list(tmp_path.iterdir()) == [], 'nothing may be written'

def test_bad_field_mapping_and_kind(user_files, tmp_path):
    f = str(user_files/'no_answer.jsonl')
    for argv, thing in ((['--field', 'questoin=Problem'], "unknown field 'questoin' in the mapping; fields are id, question"),
                        (['--field', 'question'], "--field 'question': write FIELD=COLUMN"),
                        (['--field', 'answer=Answer'], "row 0, field 'answer': missing (looked for the column Answer)")):
        rc, out, err = run_cli('tasks', '--dataset', f, *argv)
        assert rc == 2 and out == '' and one_line_error(err, 'tasks') and thing in err, err
    rc, out, err = run_cli('tasks', '--dataset', 'mini-math', '--field', 'question=q')
    assert rc == 2 and 'mini-math takes no option fields' in err

def test_bad_data_file_through_the_python_api(user_files):
    for case, (thing, fix) in USER_CASES.items():
        with pytest.raises(BamasError) as e: load_tasks(str(user_files/case))
        assert '\n' not in str(e.value) and thing in str(e.value) and fix in str(e.value), str(e.value)

def test_hub_offline_is_one_line(tmp_path):
    rc, out, err = run_cli('tasks', '--dataset', 'hf:no-such-owner/no-such-set', env={'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1',
                                                                                        'HF_HOME': tmp_path/'hf'})
    assert rc == 2 and out == '' and one_line_error(err, 'tasks'), err
    assert 'hf:no-such-owner/no-such-set: not in the local Hugging Face cache, and the hub is off' in err and 'unset them' in err
