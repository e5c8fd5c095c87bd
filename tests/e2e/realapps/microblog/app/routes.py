# The views: a login kept in Flask's signed session cookie, an upload, a streamed page that
# holds its generator until /stream/release (so a test sees the first chunk arrive first),
# and a view that fails.
import hashlib
import threading

from flask import redirect, request, session, url_for

from app import app

STREAM_HOLD_S = 20.0
_stream_released = threading.Event()


@app.route('/')
@app.route('/index')
def index():
    if 'username' not in session:
        return redirect(url_for('login'))
    return f"Hi, {session['username']}!"


@app.route('/login', methods=['GET', 'POST'])
def login():
    if request.method == 'POST':
        session['username'] = request.form['username']
        return redirect(url_for('index'))
    return '<form method="post"><input name="username"></form>'


@app.route('/logout')
def logout():
    session.pop('username', None)
    return redirect(url_for('index'))


@app.route('/secret-key')
def secret_key():
    return {'secret_key': app.config['SECRET_KEY']}


@app.route('/upload', methods=['POST'])
def upload():
    digest = hashlib.sha256()
    size = 0
    stream = request.files['file'].stream
    while chunk := stream.read(1 << 16):
        digest.update(chunk)
        size += len(chunk)
    return {'filename': request.files['file'].filename, 'size': size,
            'sha256': digest.hexdigest(), 'note': request.form.get('note')}


@app.route('/stream')
def stream():
    parts = int(request.args.get('parts', '4'))

    def generate():
        yield 'part 0;'
        released = _stream_released.wait(STREAM_HOLD_S)
        _stream_released.clear()
        for number in range(1, parts):
            yield f'part {number};' if released else 'timed out;'

    return app.response_class(generate(), mimetype='text/plain')


@app.route('/stream/release')
def stream_release():
    _stream_released.set()
    return 'released'


@app.route('/boom')
def boom():
    return {'answer': 1 // 0}
