// Users of the account (admin): list and invite with a role no higher than one's own.

import * as api from '../api.js';
import { field, h, onSubmit, table, toast, value, when } from '../ui.js';

export async function usersPage(view, _params, me) {
  const { users } = await api.get('/users');
  const roles = [['agent', 'Agent'], ['admin', 'Admin'], ['super_admin', 'Super admin']];
  const rank = { agent: 1, admin: 2, super_admin: 3 };
  const form = h('form', { class: 'panel', 'aria-labelledby': 'new-user' },
    h('h2', { id: 'new-user', text: 'New user' }),
    h('div', { class: 'row' },
      field({ name: 'email', label: 'Email', type: 'email', required: true }),
      field({ name: 'password', label: 'First password', type: 'password', required: true, minlength: 12, autocomplete: 'new-password', hint: 'at least 12 characters with upper and lower case, a digit and a symbol' }),
      field({ name: 'role', label: 'Role', type: 'select', options: roles.filter(([r]) => rank[r] <= rank[me.role]) })),
    h('button', { type: 'submit', class: 'primary', text: 'Create user' }));
  onSubmit(form, {
    build: (f) => ({ email: value(f, 'email'), password: f.elements.namedItem('password').value, role: value(f, 'role') }),
    send: (body) => api.post('/users', body),
    done: (result) => {
      toast(`User ${result.user.email} created`);
      view.replaceChildren();
      usersPage(view, _params, me);
    },
  });
  view.append(
    h('h1', { text: 'Users' }),
    table([
      { label: 'Email', value: (u) => u.email },
      { label: 'Role', value: (u) => u.role.replace('_', ' ') },
      { label: 'Since', value: (u) => when(u.created_at) },
    ], users, { label: 'Users' }),
    form);
}
