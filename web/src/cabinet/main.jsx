// main.jsx: mounts the cabinet page (app.jsx) into index's #app.
import '../lib/style.css';
import './cabinet.css';
import { render } from 'preact';
import { App } from './app.jsx';

render(<App />, document.getElementById('app'));
